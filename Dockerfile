# A small non-root image of the controller.
#   docker build -t workerpodautoscaler .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# `controller`: `run`, `watch` and `crd` (the default build has only
# `simulate` and `decide`).
RUN cargo build --release --locked -p workerpodautoscaler --features controller \
 && cp target/release/workerpodautoscaler /workerpodautoscaler

# distroless/cc: glibc, libgcc and CA certificates, no shell; runs as
# uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /workerpodautoscaler /usr/local/bin/workerpodautoscaler
USER 65532:65532
EXPOSE 8787
ENTRYPOINT ["/usr/local/bin/workerpodautoscaler"]
CMD ["run"]
