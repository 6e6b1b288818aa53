# bastion: `docker run -v /srv/bastion:/home/bastion/data -p 2222:2222 bastion`
# The volume is the bastion home (keys, policies.toml, sessions/, state.db); create it
# once with `docker run ... bastion init`.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 bastion

WORKDIR /src
# Dependencies first, exactly as locked (hashes checked), so this layer is cached.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md policies.toml ./
COPY bastion ./bastion
RUN rm -f bastion/data/policies.toml && cp policies.toml bastion/data/policies.toml \
    && pip install --no-cache-dir --no-deps .

USER bastion
ENV BASTION_HOME=/home/bastion/data
VOLUME ["/home/bastion/data"]
EXPOSE 2222
ENTRYPOINT ["bastion"]
CMD ["serve", "--listen", "0.0.0.0:2222"]
