"""The HTTP API: one more face of the supervisor, beside `ui` and the headless printer.

Every supervisor (`vik-tui run`, `run -d`, and the in-process UI) serves it, as a companion the
CLI registers (`Supervisor.add_companion`): the engine never imports this package, and the UI
never imports its server. Layout of the package:

- `wire`: the wire schema. Pydantic `TypeAdapter`s for the engine's typed views
  (`engine.view.EngineView`, the terminal plans), the engine events (sent as their headless
  JSON object, `EngineEvent.to_json()`, and read back with `event_from_json`), and the
  Symphony-shaped bodies of vik's planned routes (SPEC §13.7).
- `routes`: the route table (method, path, what it answers), shared by the server and any client.
- `endpoint`: where a supervisor listens: `service/api.sock` (0600, no token) and, with
  `--port`, TCP behind a bearer token kept in `service/api.token` (0600).
- `front`: the companion: the sockets listen from the start, the server is loaded when the
  first client connects (a run nobody asks pays neither its import nor its memory).
- `server`: the aiohttp application (auth and error-envelope middlewares, the handlers, the
  Server-Sent Events stream with its replay ring, `stream`).
"""
