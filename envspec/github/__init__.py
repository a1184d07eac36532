"""The pull-request side of envspec: comments, the GitHub API, preview garbage collection."""

# The stages a PR comment reports; here (not in comment.py) so the CLI can offer them without importing it.
COMMENT_KINDS = ("plan", "deployed", "destroyed", "failed")
