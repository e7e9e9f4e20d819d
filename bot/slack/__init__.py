"""The Slack adapter: a Bolt app that answers `/flux`, rendering answers as Block Kit."""
