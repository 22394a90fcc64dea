"""The lake's AWS infrastructure as a CDK app: one module per stack, built by `lake_stacks.app.build_app`."""
