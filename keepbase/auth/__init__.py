"""Users and sign-in: tokens bound to the record's tokenKey, password auth."""
