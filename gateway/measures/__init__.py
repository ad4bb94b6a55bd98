"""The provincial indicators: package Measures evaluated over the archive (definition,
population file, evaluation, MeasureReport and its HTML/XLSX views)."""
