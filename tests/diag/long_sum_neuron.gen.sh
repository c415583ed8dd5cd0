# A neuron model's equation of 200000 terms.
printf 'neuron M(v_th = 1.0) {\n  state v = 0.0;\n  v = v + x'
yes ' + x' | head -n 200000 | tr -d '\n'
printf ';\n  s = spike(v - v_th);\n  v = v * (1 - s);\n  emit s;\n}\n'
printf 'network N {\n  timesteps 4;\n  input img : [784] encode direct;\n  h = img |> dense(10) |> M();\n  output h readout count;\n}\n'
