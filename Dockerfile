# The gatewaylens mock upstream as a container (used by docker-compose.yml as service "mock").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gatewaylens ./gatewaylens
RUN pip install --no-cache-dir .
EXPOSE 9999
CMD ["mock", "--host", "0.0.0.0", "--port", "9999"]
