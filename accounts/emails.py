"""The account e-mails: the password reset link and the "your password changed" notice.

Sent by Celery tasks after the commit of the change that causes them (core/events.py). The reset
link's token is made at send time and stored nowhere: Django's token generator signs the user's
password hash and last login, so setting a password (or logging in) spends it.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User


def reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password-reset-page", kwargs={"uidb64": uid, "token": token})
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def _send(user: User, template: str, subject: str, context: dict) -> None:
    context = {"user": user, "site_url": settings.SITE_URL.rstrip("/"), **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"accounts/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(render_to_string(f"accounts/email/{template}.html", context), "text/html")
    message.send(fail_silently=False)


def send_password_reset(user: User) -> None:
    minutes = max(settings.PASSWORD_RESET_TIMEOUT // 60, 1)
    _send(user, "password_reset", "Reset your password", {"link": reset_link(user), "minutes": minutes})


def send_password_changed(user: User) -> None:
    _send(user, "password_changed", "Your password was changed", {})
