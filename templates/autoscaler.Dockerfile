# The autoscale controller's image: the node image and two bundled files, the controller
# (scripts/bundle-autoscaler.mjs) and the engine gate (scripts/bundle-cli.mjs), which the version's
# <app>-<version>-autoscaler-gate service runs from this same image. Built on the manager by depl buildinst when
# depl.yaml has autoscale:, tagged by the hash of its inputs.
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}
COPY autoscaler.mjs /opt/depl/autoscaler.mjs
COPY engine-gate.mjs /opt/depl/engine-gate.mjs
# root: the gate talks to the manager's Docker socket, bind-mounted into its container (the controller has none;
# it reads its secrets, 0400 root, and writes its state folder)
USER root
ENTRYPOINT ["node", "/opt/depl/autoscaler.mjs"]
