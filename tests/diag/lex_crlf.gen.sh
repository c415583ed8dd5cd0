# CRLF line ends: the quoted line and the caret leave out the CR.
printf 'network N {\r\n  timesteps 4;\r\n  input img : [784] encode direct;\r\n  h = img |> dense(10) |> LIFF();\r\n  output h readout mean;\r\n}\r\n'
