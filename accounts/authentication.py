from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from accounts.models import User


class ActiveUserJWTAuthentication(JWTAuthentication):
    """Bearer JWT; the user is loaded with its organization and must still be active."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise AuthenticationFailed("Token contained no recognizable user identification.") from None
        user = User.objects.select_related("organization").filter(pk=user_id).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
        return user
