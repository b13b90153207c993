"""Identity and access: principals, tokens, roles, and the single ``authorize`` decision."""
