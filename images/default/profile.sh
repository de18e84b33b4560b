# /etc/profile.d/seashell.sh: login shell setup of Seashell environments.
# Sourced by bash (through /etc/profile) and zsh (through /etc/zsh/zprofile).

# Only interactive shells get the banner and the prompt.
case $- in
    *i*) ;;
    *) return 0 2>/dev/null || exit 0 ;;
esac

# Show the welcome message once per session, not in every nested login shell.
if [ -z "${SEASHELL_MOTD_SHOWN:-}" ] && [ -r /etc/motd ]; then
    cat /etc/motd
    if [ -n "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ]; then
        printf '  Region:          %s\n\n' "${AWS_REGION:-$AWS_DEFAULT_REGION}"
    fi
    SEASHELL_MOTD_SHOWN=1
    export SEASHELL_MOTD_SHOWN
fi

# CloudShell's prompt: [user@host dir]$ ; the region is shown in the window
# title of terminals that support it.
if [ -n "${BASH_VERSION:-}" ]; then
    PS1='[\u@\h \W]\$ '
    case "${TERM:-}" in
        xterm* | screen* | tmux*)
            PS1="\[\e]0;\u@\h ${AWS_REGION:-}\a\]$PS1"
            ;;
    esac
elif [ -n "${ZSH_VERSION:-}" ]; then
    PROMPT='[%n@%m %1~]%# '
fi
