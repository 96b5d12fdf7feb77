"""A real PTZ camera over ONVIF, behind :class:`spoton.follow.ptz.PtzController`.

Client: PyPI ``onvif-zeep-async`` (4.3), the maintained ONVIF library (``onvif-zeep`` was last
released in 2018); it ships the ONVIF WSDLs, so nothing is fetched at run time. It is asyncio;
SpotOn's processing loops are threads, so :class:`OnvifPtz` runs the client on an event loop
thread of its own and offers plain blocking calls, each bounded by ``timeout_s``.

Operations used: device GetServices (service addresses), media GetProfiles (the first profile
with a PTZ configuration, or the one named) and GetStreamUri, PTZ ContinuousMove, Stop,
GotoPreset, SetPreset, GetPresets, GetStatus. Presets are addressed by name; the camera's
tokens stay inside. Errors name the camera's address and the operation, never its password.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from spoton.follow.ptz import PtzError, PtzPosition, PtzStatus, check_preset_name, check_velocity


@dataclass(frozen=True)
class OnvifPtzConfig:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    profile_token: str | None = None  # None: the first profile with a PTZ configuration
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.host or not 0 < int(self.port) < 65536:
            raise PtzError(f"an ONVIF camera needs a host and a port in 1..65535, got {self.host!r}:{self.port!r}")
        if self.timeout_s <= 0:
            raise PtzError(f"timeout_s must be > 0, got {self.timeout_s}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class OnvifPtz:
    """A connected ONVIF PTZ; ``close()`` when done (or use it as a context manager)."""

    def __init__(self, config: OnvifPtzConfig):
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"onvif-{config.address}", daemon=True)
        self._thread.start()
        self._camera = None
        self._ptz = self._media = None
        self.profile_token: str | None = None
        try:
            self._call("connect", self._connect())
        except BaseException:
            self.close()
            raise

    def _call(self, operation: str, coroutine):
        """Run ``coroutine`` on the client's loop; any failure becomes a PtzError naming the operation."""
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, self.config.timeout_s), self._loop)
        try:
            return future.result()
        except PtzError:
            raise
        except (TimeoutError, asyncio.TimeoutError):
            raise PtzError(f"ONVIF camera {self.config.address}: {operation} got no answer within "
                           f"{self.config.timeout_s} s: check the address and that the camera is on") from None
        except Exception as exc:  # zeep faults, ONVIFError, connection errors
            raise PtzError(f"ONVIF camera {self.config.address}: {operation} failed: "
                           f"{_describe(exc, self.config.password)}") from None

    async def _connect(self) -> None:
        from onvif import ONVIFCamera  # lazy: zeep and lxml load only when a real PTZ is used

        cfg = self.config
        self._camera = ONVIFCamera(cfg.host, cfg.port, cfg.user, cfg.password, no_cache=True)
        await self._camera.update_xaddrs()
        self._media = await self._camera.create_media_service()
        self._ptz = await self._camera.create_ptz_service()
        profiles = await self._media.GetProfiles()
        usable = [p.token for p in profiles if getattr(p, "PTZConfiguration", None) is not None]
        if cfg.profile_token is not None:
            if cfg.profile_token not in [p.token for p in profiles]:
                raise PtzError(f"ONVIF camera {cfg.address} has no media profile {cfg.profile_token!r}: "
                               f"its profiles are {[p.token for p in profiles]}")
            self.profile_token = cfg.profile_token
        elif usable:
            self.profile_token = usable[0]
        else:
            raise PtzError(f"ONVIF camera {cfg.address} has no media profile with a PTZ configuration: "
                           "is it a PTZ camera?")

    # --- PtzController -------------------------------------------------------------------
    def continuous_move(self, pan: float, tilt: float, zoom: float) -> None:
        velocity = {"PanTilt": {"x": check_velocity("pan", pan), "y": check_velocity("tilt", tilt)},
                    "Zoom": {"x": check_velocity("zoom", zoom)}}
        self._call("ContinuousMove", self._ptz.ContinuousMove({"ProfileToken": self.profile_token,
                                                                "Velocity": velocity}))

    def stop(self) -> None:
        self._call("Stop", self._ptz.Stop({"ProfileToken": self.profile_token, "PanTilt": True, "Zoom": True}))

    def _preset_tokens(self) -> dict[str, str]:
        presets = self._call("GetPresets", self._ptz.GetPresets({"ProfileToken": self.profile_token}))
        return {p.Name: p.token for p in presets or [] if p.Name}

    def goto_preset(self, name: str) -> None:
        tokens = self._preset_tokens()
        if check_preset_name(name) not in tokens:
            raise PtzError(f"no preset {name!r} on ONVIF camera {self.config.address}: saved ones are {sorted(tokens)}")
        self._call("GotoPreset", self._ptz.GotoPreset({"ProfileToken": self.profile_token,
                                                        "PresetToken": tokens[name]}))

    def save_preset(self, name: str) -> None:
        request = {"ProfileToken": self.profile_token, "PresetName": check_preset_name(name)}
        token = self._preset_tokens().get(name)
        if token is not None:  # overwrite the preset of that name
            request["PresetToken"] = token
        self._call("SetPreset", self._ptz.SetPreset(request))

    def status(self) -> PtzStatus:
        status = self._call("GetStatus", self._ptz.GetStatus({"ProfileToken": self.profile_token}))
        position = status.Position
        pan_tilt, zoom = position.PanTilt, position.Zoom
        moves = status.MoveStatus
        moving = moves is not None and "MOVING" in (str(moves.PanTilt), str(moves.Zoom))
        return PtzStatus(PtzPosition(float(pan_tilt.x), float(pan_tilt.y), float(zoom.x)), moving)

    def stream_uri(self) -> str:
        """The profile's video stream URL (RTSP or HTTP), for a live source."""
        request = {"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "HTTP"}},
                   "ProfileToken": self.profile_token}
        return str(self._call("GetStreamUri", self._media.GetStreamUri(request)).Uri)

    def close(self) -> None:
        if self._camera is not None:
            camera, self._camera = self._camera, None
            try:
                asyncio.run_coroutine_threadsafe(camera.close(), self._loop).result(self.config.timeout_s)
            except Exception:  # closing a dead connection: nothing left to free
                pass
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.config.timeout_s)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> "OnvifPtz":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _describe(exc: Exception, password: str) -> str:
    """The exception's message, with the password cut out should a library ever echo it."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.replace(password, "***") if password else text
