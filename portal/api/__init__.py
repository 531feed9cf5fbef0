"""The REST API (/api/v1/): tenant API keys, one tenant-scoping mixin, thin viewsets over services."""
