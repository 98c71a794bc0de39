#!/bin/sh
# Per-branch staging from CI: every pushed branch is deployed as its own version at
# http(s)://<branch label>.<domain>/ (see the README: the branch name, or its slug and a hash), and deleted
# branches are removed again.
#
#   templates/ci/deploy-branch.sh deploy [BRANCH]   build and install BRANCH (default: the CI's branch variable),
#                                                   print its preview URL; exit non-zero if the deploy failed
#   templates/ci/deploy-branch.sh prune [BRANCH...] remove the deploys of branches not named (default: the
#                                                   remote's branches, from `git ls-remote --heads origin`)
#
# Environment: DEPL (the command, default `depl`; e.g. `npx depl`), DEPL_CONFIG (depl.yaml), DEPL_LOCK_WAIT
# (how long to queue behind another pipeline's deploy, default 20m), and the secrets of depl.yaml as
# DEPL_SECRET_<NAME> (from the CI's secret store; never written to disk by this script).
# Writes `url=<preview URL>` to $GITHUB_OUTPUT when that is set, and to deploy.env (GitLab dotenv report).
set -eu

DEPL="${DEPL:-depl}"
LOCK_WAIT="${DEPL_LOCK_WAIT:-20m}"
action="${1:-}"
[ $# -gt 0 ] && shift

ci_branch() {
  # GitHub Actions (pull request head first), GitLab CI, Buildkite, Jenkins, then git itself
  for candidate in "${GITHUB_HEAD_REF:-}" "${GITHUB_REF_NAME:-}" "${CI_COMMIT_REF_NAME:-}" "${BUILDKITE_BRANCH:-}" "${BRANCH_NAME:-}"; do
    if [ -n "$candidate" ]; then printf '%s\n' "$candidate"; return; fi
  done
  git rev-parse --abbrev-ref HEAD 2>/dev/null || true
}

case "$action" in
  deploy)
    branch="${1:-$(ci_branch)}"
    if [ -z "$branch" ] || [ "$branch" = HEAD ]; then
      echo "deploy-branch: no branch name; pass one (deploy-branch.sh deploy NAME) or run in a CI job that sets it" >&2
      exit 2
    fi
    echo "deploy-branch: deploying branch $branch (waiting up to $LOCK_WAIT for other deploys)" >&2
    # --json: the result document on stdout, progress on stderr (shown in the CI log)
    # shellcheck disable=SC2086 # DEPL may be a command with arguments, such as `npx depl`
    result="$($DEPL buildinst --branch "$branch" --lock-wait "$LOCK_WAIT" --yes --json)"
    url="$(printf '%s' "$result" | node -e 'let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>{process.stdout.write(JSON.parse(s).url)})')"
    echo "Preview: $url"
    if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "url=$url" >> "$GITHUB_OUTPUT"; fi
    echo "DEPL_PREVIEW_URL=$url" > deploy.env
    ;;
  prune)
    if [ $# -eq 0 ]; then
      branches="$(git ls-remote --heads origin | sed 's#.*refs/heads/##' | paste -sd, -)"
      if [ -z "$branches" ]; then
        echo "deploy-branch: git ls-remote found no branches on origin; refusing to prune every branch deploy" >&2
        exit 1
      fi
    else
      branches="$(printf '%s\n' "$@" | paste -sd, -)"
    fi
    # shellcheck disable=SC2086
    $DEPL prune --branches "$branches" --lock-wait "$LOCK_WAIT" --yes
    ;;
  *)
    echo "usage: deploy-branch.sh deploy [BRANCH] | prune [BRANCH...]" >&2
    exit 2
    ;;
esac
