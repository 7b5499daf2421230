"""Results for people: text tables, plots and the HTML report."""
