# The gatewaylens mock upstream as a container (used by docker-compose.yml as service "mock").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gatewaylens ./gatewaylens
RUN pip install --no-cache-dir .
EXPOSE 9999
# Inside the container the mock must listen beyond loopback (compose publishes it on 127.0.0.1 only).
CMD ["mock", "--host", "0.0.0.0", "--allow-remote", "--port", "9999"]
