"""Leaderboard: turns result files into tables and plots."""
