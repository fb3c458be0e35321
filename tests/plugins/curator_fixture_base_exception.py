"""A plugin that raises a BaseException subclass while it is imported."""


class Unusual(BaseException):
    pass


raise Unusual("raised at import")
