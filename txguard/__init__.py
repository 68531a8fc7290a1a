"""txguard: settings, the CLI and the embedded local stack."""
