"""Microsoft Entra ID: authority metadata, the token endpoint, the device-code flow and the tokens it issues."""
