"""The docker assembler: layer plan (``builder.assembly``) -> Dockerfile templates -> pinned base ->
``docker build`` on the local engine. Entry point: ``builder.image.bake.assemble`` (an
``builder.assembly.Assembler``)."""
