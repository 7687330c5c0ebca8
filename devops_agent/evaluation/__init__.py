"""`devops-agent eval`: fault scenarios as data, baselines, scoring and the report."""
