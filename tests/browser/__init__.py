"""Real-browser tests: Debian's Chromium driven by Playwright, each page checked with axe-core."""
