"""The OnApp API: HTTP client with retries and paging, Rails XML, secrets stripped at the boundary. No Dagster."""
