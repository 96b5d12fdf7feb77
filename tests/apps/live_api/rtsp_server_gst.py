"""A real RTSP server (GStreamer's gst-rtsp-server) streaming an H.264 MP4 on loopback.

Run with the SYSTEM python (it has ``gi``), not the venv: ``/usr/bin/python3 rtsp_server_gst.py
--port P --video V.mp4``. Serves ``rtsp://127.0.0.1:P/cam``; every client gets the video from its
start, paced at its native rate, until the file ends. Prints ``READY`` once it listens; stops on SIGTERM.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--video", required=True, help="an H.264 MP4")
    parser.add_argument("--path", default="/cam")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    # no re-encoding: the MP4's H.264 is packetised as is (cheap on a shared CPU)
    factory.set_launch(
        f"( filesrc location={args.video} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 "
        "config-interval=1 )")
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"could not listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(2)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
