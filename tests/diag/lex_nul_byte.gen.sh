# A NUL byte: the file is not text.
printf 'network N {\n  timesteps 4;\0\n}\n'
