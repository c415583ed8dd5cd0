# 100000 nested parentheses: more than the parser's stack holds.
printf 'network N {\n  timesteps '
yes '(' | head -n 100000 | tr -d '\n'
printf 4
yes ')' | head -n 100000 | tr -d '\n'
printf ';\n}\n'
