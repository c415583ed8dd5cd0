# 20000 layers, then an output naming none of them: found at once.
printf 'network N {\n  timesteps 4;\n  input img : [8] encode direct;\n'
for i in $(seq 20000); do printf '  h%d = img |> dense(4) |> LIF();\n' "$i"; done
printf '  output h0 readout count;\n}\n'
