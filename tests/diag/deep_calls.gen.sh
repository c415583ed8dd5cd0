# Calls nested 1500 deep in a neuron model.
printf 'neuron M(v_th = 1.0) {\n  state v = 0.0;\n  v = v + '
yes 'tanh(' | head -n 1500 | tr -d '\n'
printf x
yes ')' | head -n 1500 | tr -d '\n'
printf ';\n  s = spike(v - v_th);\n  emit s;\n}\n'
printf 'network N {\n  timesteps 4;\n  input img : [784] encode direct;\n  h = img |> dense(10) |> M();\n  output h readout count;\n}\n'
