"""Weekly change-health reports: composed from the history store, charted, posted on schedule."""
