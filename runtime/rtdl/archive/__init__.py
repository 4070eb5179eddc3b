"""ArchiveWriter: every admitted record kept in immutable batch objects for replay past bus retention."""
