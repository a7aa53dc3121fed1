# zsh-complete.zsh FPATH_DIR LINE: prints, sorted on one line, the candidates zsh's completion system
# offers for LINE (TAB at its end), as an interactive zsh in a pseudo-terminal computes them with the
# completion functions of FPATH_DIR. hack/test-cli runs it (zsh -f tests/cli/zsh-complete.zsh ...).
# Each candidate reaches compadd, which is wrapped to print it; the markers are spelled in two pieces so
# the terminal's echo of the typed commands never matches them.
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
# Once the completion is over: insert nothing, list nothing, say so. Nothing more is typed before that
# (typeahead could cut a completion short).
zpty -w z '_capture_done() { compstate[insert]=""; compstate[list]=""; print -r -- "COMPLETION""-DONE" }'
zpty -w z 'comppostfuncs=(_capture_done)'
zpty -w z 'compadd() { builtin compadd -O __hits "$@"; local h; for h in $__hits; do print -r -- "HIT""=$h"; done; builtin compadd "$@" }'
zpty -w z 'print -r -- "READY""-NOW"'
zpty -r z out $'*\nREADY-NOW*'
zpty -n -w z "$2"$'\t'
zpty -r z out $'*COMPLETION-DONE*'
zpty -n -w z $'\x15'
zpty -d z
local -a hits=(${${(M)${(f)out//$'\r'/}:#*HIT=*}##*HIT=})
print -r -- ${(j: :)${(ou)hits}}
