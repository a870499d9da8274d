"""Events catalogue: workshops, trainings, trade fairs and exhibitions.

``records`` validates imported rows, ``catalogue`` stores and queries them,
``csv_io`` and ``ical`` read and write files, ``importer`` ties them together and
``audience`` says who hears about an event.
"""
