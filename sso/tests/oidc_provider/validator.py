from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    """E-mail claims for every user; a user whose name starts with ``wrong-aud`` gets ID tokens
    for another audience (the tests' way to make a real provider send a misaddressed token)."""

    oidc_claim_scope = None

    def get_additional_claims(self, request):
        claims = {"email": request.user.email, "email_verified": True, "given_name": "Sso", "family_name": "User"}
        if request.user.username.startswith("wrong-aud"):
            claims["aud"] = "another-client"
        return claims
