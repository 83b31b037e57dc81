# caasd image: a static binary on a small Debian base (curl for healthchecks).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/caasd ./cmd/caasd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/caasd /usr/local/bin/caasd
USER 65534:65534
EXPOSE 8080 7946 8090
ENTRYPOINT ["/usr/local/bin/caasd"]
