# timesteps 1+1+...+1 with 200000 terms: an expression deeper than the
# compiler walks.
printf 'network N {\n  timesteps 1'
yes '+1' | head -n 199999 | tr -d '\n'
printf ';\n  input img : [784] encode direct;\n  h = img |> dense(10) |> LIF();\n  output h readout count;\n}\n'
