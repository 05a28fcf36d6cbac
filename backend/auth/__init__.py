"""Users, roles, area scopes, tokens and API keys: nobody sees or touches what is not theirs."""
