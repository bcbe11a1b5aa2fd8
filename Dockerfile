# CPU image by default. For CUDA:
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#                --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 -t isegm:cuda .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-pip python3-tk tk libgl1 libglib2.0-0 xvfb xdotool imagemagick \
    && rm -rf /var/lib/apt/lists/* \
    && (command -v python >/dev/null || ln -s /usr/bin/python3 /usr/local/bin/python)

WORKDIR /isegm
COPY requirements.txt requirements-dev.txt ./
RUN python -m pip install --no-cache-dir --extra-index-url ${TORCH_INDEX} -r requirements-dev.txt
COPY . .
RUN python -m pip install --no-cache-dir --no-deps -e .

# GUI: docker run -e DISPLAY=$DISPLAY -v /tmp/.X11-unix:/tmp/.X11-unix isegm python demo.py
CMD ["python", "-m", "pytest", "-q", "tests"]
