# The edge image when nodes can pull (a registry, Nectar): the same Debian packages the offline base image
# is made of (src/apply/base-images.ts): nginx and its Lua module, with which the edge routes at request time.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light libnginx-mod-http-lua \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
