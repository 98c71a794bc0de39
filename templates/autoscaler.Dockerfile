# The autoscale controller's image: the node image and one bundled file (scripts/bundle-autoscaler.mjs).
# Built on the manager by depl buildinst when depl.yaml has autoscale:, tagged by the hash of its inputs.
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}
COPY autoscaler.mjs /opt/depl/autoscaler.mjs
# root: it talks to the manager's Docker socket, bind-mounted into its container
USER root
ENTRYPOINT ["node", "/opt/depl/autoscaler.mjs"]
