from organizations.models import Department, Holiday


def departments_for(*, organization):
    return Department.objects.for_organization(organization).select_related("parent", "head")


def holidays_for(*, organization):
    return Holiday.objects.for_organization(organization)
