#!/bin/sh
# Writes a catalog CSV (the format of docs/cli.md, catalog import) on stdout, for tests and for
# timing `dropshipctl catalog import`:
#   tests/gen-catalog.sh ROWS [SUPPLIERS] [STOCK_BASE]
# Rows go round the suppliers sup1..supN (default 3), so every SKU is
# offered by each of them: 1000000 rows with 3 suppliers are 333334 SKUs.
# STOCK_BASE (default 0) shifts every stock value: a second file with
# another base updates every offer of the first.
set -eu
rows=${1:?usage: gen-catalog.sh ROWS [SUPPLIERS] [STOCK_BASE]}
suppliers=${2:-3}
base=${3:-0}
awk -v rows="$rows" -v n="$suppliers" -v base="$base" 'BEGIN {
	split("*|US;CA|DE;FR;GB;NL|US|\"US;CA;MX\"", ships, "|")
	print "supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to"
	for (i = 0; i < rows; i++) {
		s = i % n + 1
		k = int(i / n)
		printf "sup%d,SKU-%07d,S%d-%07d,%d.%02d,%d.%d,%d,%d,%s\n", s, k, s, k,
		       1 + (k * 7919 + s * 13) % 500, (k + s) % 100, (k + s) % 9, s % 10,
		       base + (k * 31 + s) % 1000, (k + s) % 30, ships[(k + s) % 5 + 1]
	}
}'
