"""Layer 3: deployment — sandboxed model workers, deployments, the prediction gateway.

- ``wire``         the gateway <-> worker frame format: length-prefixed strict JSON, bounded
- ``sandbox``      the bubblewrap command line and resource limits of one worker process
- ``worker``       the program that runs *inside* the sandbox (restricted loader, predict loop)
- ``workers``      ``SandboxedWorker``: start, adaptive micro-batching, crash -> restart + audit
- ``values``       endpoints, deployments, input schema and response policy (typed, frozen)
- ``schema``       input validation derived from the training dataset's data contract
- ``deployments``  ``DeploymentService``: deploy (gate, re-verify), status, rollback, revocation
- ``gateway``      ``Gateway``: authorize, rate-limit, validate, predict in the sandbox, log
- ``ports``        the release gate and the deployment repository (Protocols)
- ``errors``       ``ServingError`` and its children
"""
