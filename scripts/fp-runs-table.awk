# Reads `dlcarbon validate --mode first-principles` and prints its distinct runs as a Markdown
# table sorted by |error| (rows with the same published and predicted hours are one run).
function abs(x) { x = x + 0; return x < 0 ? -x : x }
/^scenario/ && !started { started = 1; next }
started && NF == 0 { exit }
started && $2 ~ /^[0-9.e+]+$/ && $3 ~ /^[0-9.e+]+$/ {
  key = $2 " " $3
  if (key in name) { name[key] = name[key] ", " $1; next }
  order[++n] = key; name[key] = $1; pub[key] = $2; sim[key] = $3; err[key] = $4
  base[key] = $6; mfu[key] = $7 " / " $8
}
END {
  for (i = 1; i <= n; ++i) {
    k = order[i]; e = err[k]; sub(/%/, "", e)
    printf "%09.3f|| %s | %s | %s | %s | %s | %s |\n", abs(e), name[k], pub[k], sim[k], err[k], base[k], mfu[k]
  }
}
