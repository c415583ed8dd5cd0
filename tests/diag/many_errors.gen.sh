# 100000 stray characters: the first 20 errors are shown, all are counted.
printf 'network N {\n  timesteps 4;\n'
yes '  @' | head -n 100000
printf '}\n'
