"""`devops-agent demo`: one command that shows the product working on a broken container."""
