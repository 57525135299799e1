"""Agreement of automatic with manual readings: `python -m agreement` (agreement.command)
pairs two tables by key, and gives Bland-Altman bias and limits, Pearson r and ICC per
measurement (agreement.bland_altman), with the tables' rules in agreement.tables."""
