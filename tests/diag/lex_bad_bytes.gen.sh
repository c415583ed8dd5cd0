# A byte that is not UTF-8 (0xff) and a control character (0x01).
printf 'network N {\n  timesteps 4\377;\n  input img : [784] \001encode direct;\n}\n'
