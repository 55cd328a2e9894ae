"""The Bottle web app: front page, search, polls, submissions and moderation."""
