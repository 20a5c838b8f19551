from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from accounts.models import User
from accounts.tokens import token_is_current


class ActiveUserJWTAuthentication(JWTAuthentication):
    """Bearer JWT; the user is loaded with its organization, must still be active, and the token
    must carry the user's current token version (one query: the same row)."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise AuthenticationFailed("Token contained no recognizable user identification.") from None
        user = User.objects.select_related("organization").filter(pk=user_id).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
        if not token_is_current(validated_token, user):
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        return user
